package policy

import (
	"context"

	"github.com/gatehouse-dev/gatehouse/internal/selector"
)

// MaxBatchPrivacyWork bounds the privacy work of all the checks of one
// batch (a CheckFeatures call) together, in the units of MaxPrivacyWork.
// Each check may still spend up to MaxPrivacyWork, as a single decision
// may; once the batch's work is spent, every further check that needs
// privacy work is answered with the protective denial (RulePrivacyWorkLimit).
// So a batch of 1 000 costly checks costs about what four costly single
// decisions cost, not a thousand.
const MaxBatchPrivacyWork = 4 * MaxPrivacyWork

// BatchWork is the privacy work budget the checks of one batch share. It is
// not safe for concurrent use: one batch, checked in order.
type BatchWork struct {
	left    int
	cur     selector.Budget
	limited int
}

// NewBatchWork returns the budget of a new batch: MaxBatchPrivacyWork.
func NewBatchWork() *BatchWork { return &BatchWork{left: MaxBatchPrivacyWork} }

// Limited returns how many checks of the batch were given the protective
// denial with less than MaxPrivacyWork to spend: the batch's work ran low.
func (w *BatchWork) Limited() int { return w.limited }

// CheckBatched is CheckContext for one check of the batch w: its privacy
// rules may spend MaxPrivacyWork, or what is left of the batch's work when
// that is less. The answer is the one CheckContext gives, except that a
// check denied by RulePrivacyWorkLimit may have been answered alone.
func (s *Snapshot) CheckBatched(ctx context.Context, q *Query, w *BatchWork) (Decision, error) {
	n := min(MaxPrivacyWork, max(w.left, 0))
	w.cur = selector.NewBudget(n)
	q.work = &w.cur
	d, err := s.CheckContext(ctx, q)
	q.work = nil
	w.left -= n - max(w.cur.Left(), 0)
	if d.Rule == RulePrivacyWorkLimit && n < MaxPrivacyWork {
		w.limited++
	}
	return d, err
}
