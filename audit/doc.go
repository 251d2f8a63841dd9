// Package audit is toolgate's SQLite audit log: every call, its context and
// decision, committed before the call runs, and its outcome after; hash
// chained, queryable, exportable and replayable.
package audit
