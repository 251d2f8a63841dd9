package toolgate

import "time"

// Status of a recorded call.
const (
	StatusStarted   = "started"    // decision committed, call forwarded, no outcome yet
	StatusPending   = "pending"    // waiting for a human review
	StatusRefused   = "refused"    // denied (by rule, reviewer, timeout or error); never forwarded
	StatusOK        = "ok"         // forwarded, upstream returned a result
	StatusToolError = "tool_error" // forwarded, upstream returned isError
	StatusFailed    = "failed"     // forwarded, transport or upstream failure
	// StatusCancelled: forwarded, then the agent cancelled the call
	// (notifications/cancelled, or it went away) before the upstream
	// answered. The upstream may have acted: the outcome is unknown, not a
	// failure, and the outcome's Error says so.
	StatusCancelled = "cancelled"
	// StatusGranted: a review approved after its agent had stopped
	// waiting; the call never ran, the approval became a grant that a
	// retry of the same call uses.
	StatusGranted = "granted"
	// StatusInterrupted: forwarded, but no outcome was recorded because
	// toolgate stopped (killed, crashed, power lost) while the call ran; the
	// audit log closed it once no process could still be running it, and
	// the outcome's Error says why.
	StatusInterrupted = "interrupted"
)

// Outcome is what happened after a call was forwarded (or refused).
type Outcome struct {
	Status     string        `json:"status"`
	Error      string        `json:"error,omitempty"`
	Duration   time.Duration `json:"duration"`
	ResultSize int           `json:"result_size"`
	ResultHash string        `json:"result_hash,omitempty"`
	FinishedAt time.Time     `json:"finished_at"`
}
