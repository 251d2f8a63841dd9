package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/toolgate/toolgate"
)

// share admits the agents' requests to one upstream (Upstream.MaxRequests):
// at most max at once, at most per of them one principal's. When requests
// wait, each place that frees goes to the waiting principal after the one
// admitted last, in turn, so however many requests one principal queues,
// another's waits for no more than the places ahead of it in that turn to
// free. A principal's own requests are admitted in the order they came.
// A nil *share admits everything at once.
type share struct {
	max, per int

	mu      sync.Mutex
	busy    int
	held    map[shareKey]int
	waiting map[shareKey][]*shareWaiter
	turn    []shareKey // principals with waiters, in the order they are served
}

// shareKey is a principal as Principal.Same sees it.
type shareKey struct{ auth, user string }

type shareWaiter struct {
	ready    chan struct{} // closed when admitted
	admitted bool
}

// newShare returns the share for max places, per of them a principal's at
// most (per <= 0 or over max: max); nil when max <= 0 (no limit).
func newShare(max, per int) *share {
	if max <= 0 {
		return nil
	}
	if per <= 0 || per > max {
		per = max
	}
	return &share{max: max, per: per, held: map[shareKey]int{}, waiting: map[shareKey][]*shareWaiter{}}
}

// acquire waits for a place for p's request, until ctx ends, and returns
// the function that frees it. On ctx's end it returns ctx's error.
func (s *share) acquire(ctx context.Context, p toolgate.Principal) (release func(), err error) {
	if s == nil {
		return func() {}, nil
	}
	k := shareKey{p.Auth, p.User}
	s.mu.Lock()
	if s.busy < s.max && s.held[k] < s.per && len(s.waiting[k]) == 0 {
		s.take(k)
		s.mu.Unlock()
		return s.releaser(k), nil
	}
	w := &shareWaiter{ready: make(chan struct{})}
	if len(s.waiting[k]) == 0 {
		s.turn = append(s.turn, k)
	}
	s.waiting[k] = append(s.waiting[k], w)
	s.mu.Unlock()

	select {
	case <-w.ready:
		return s.releaser(k), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.admitted { // admitted as ctx ended: hand the place on
		s.free(k)
	} else {
		s.drop(k, w)
	}
	return nil, ctx.Err()
}

// releaser returns the function freeing k's place, once however often it
// is called.
func (s *share) releaser(k shareKey) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.free(k)
			s.mu.Unlock()
		})
	}
}

// take gives k a place. s.mu is held.
func (s *share) take(k shareKey) {
	s.busy++
	s.held[k]++
}

// free frees one of k's places and admits whom it can. s.mu is held.
func (s *share) free(k shareKey) {
	s.busy--
	if s.held[k]--; s.held[k] == 0 {
		delete(s.held, k)
	}
	s.admit()
}

// admit gives free places to waiters, one principal at a time in turn,
// skipping those at their own limit. s.mu is held.
func (s *share) admit() {
	for s.busy < s.max {
		i := slices.IndexFunc(s.turn, func(k shareKey) bool { return s.held[k] < s.per })
		if i < 0 {
			return
		}
		k := s.turn[i]
		q := s.waiting[k]
		w := q[0]
		q = q[1:]
		// k goes to the end of the turn if it still waits, or leaves it;
		// those it was ahead of, and skipped, keep their order.
		s.turn = append(s.turn[:i], s.turn[i+1:]...)
		if len(q) > 0 {
			s.waiting[k] = q
			s.turn = append(s.turn, k)
		} else {
			delete(s.waiting, k)
		}
		s.take(k)
		w.admitted = true
		close(w.ready)
	}
}

// drop removes a waiter that gave up. s.mu is held.
func (s *share) drop(k shareKey, w *shareWaiter) {
	q := s.waiting[k]
	for i, x := range q {
		if x == w {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) > 0 {
		s.waiting[k] = q
		return
	}
	delete(s.waiting, k)
	if i := slices.IndexFunc(s.turn, func(x shareKey) bool { return x == k }); i >= 0 {
		s.turn = append(s.turn[:i], s.turn[i+1:]...)
	}
}

// state returns the places, how many are taken, and how many requests
// wait for one; all 0 for no limit.
func (s *share) state() (places, busy, waiting int) {
	if s == nil {
		return 0, 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.waiting {
		waiting += len(q)
	}
	return s.max, s.busy, waiting
}

// busyError is what an agent is told of a request that found no place
// before its timeout.
func (s *share) busyError(server string, p toolgate.Principal) error {
	s.mu.Lock()
	mine := s.held[shareKey{p.Auth, p.User}]
	s.mu.Unlock()
	msg := fmt.Sprintf("upstream %q is busy: all %d of the places toolgate keeps for it (max_requests) were taken until this request timed out", server, s.max)
	if s.per < s.max && mine >= s.per {
		msg = fmt.Sprintf("upstream %q is busy with %d of your requests, the most it takes from one user at once (max_requests_per_principal), until this one timed out", server, mine)
	}
	return errors.New(msg + ": wait for your other requests to end, or try again later: no free place")
}
