package audit

import (
	"database/sql"
	"errors"
	"fmt"
)

// The calls table refers to the strings its queries filter and group on
// (server, tool, session, rule, ...) by their id in names: each distinct
// string is stored once, and a row holds a small integer for it.

// maxNames bounds the writer's cache of name ids (session ids are
// unbounded over time); past it the cache starts over.
const maxNames = 1 << 16

// nameOf is the SQL for the string ref names.
func nameOf(ref string) string { return `(SELECT name FROM names WHERE id = ` + ref + `)` }

// nameRef is the SQL for the id of the string bound to the next
// placeholder (NULL, which matches nothing, for a string never stored).
const nameRef = `(SELECT id FROM names WHERE name = ?)`

// name returns the id of s in names, adding it if it is new. Ids added in
// this transaction are cached once it commits (committedNames).
func (w *wtx) name(s string) (int64, error) {
	if id, ok := w.s.names[s]; ok {
		return id, nil
	}
	if id, ok := w.names[s]; ok {
		return id, nil
	}
	var id int64
	err := w.s.stmts.nameID.QueryRowContext(w.ctx, s).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = w.s.stmts.addName.QueryRowContext(w.ctx, s).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("audit: name %q: %w", s, err)
	}
	if w.names == nil {
		w.names = map[string]int64{}
	}
	w.names[s] = id
	return id, nil
}

// refs appends the ids of ss to dst, in order.
func (w *wtx) refs(dst []any, ss ...string) ([]any, error) {
	for _, s := range ss {
		id, err := w.name(s)
		if err != nil {
			return nil, err
		}
		dst = append(dst, id)
	}
	return dst, nil
}

// committedNames caches the ids w added. Called with wmu held.
func (s *Store) committedNames(w *wtx) {
	if len(w.names) == 0 {
		return
	}
	if s.names == nil || len(s.names)+len(w.names) > maxNames {
		s.names = make(map[string]int64, len(w.names))
	}
	for k, v := range w.names {
		s.names[k] = v
	}
}
