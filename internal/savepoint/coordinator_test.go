package savepoint

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestWhileCoordinatorStarts(t *testing.T) {
	other := errors.New("access denied")
	tests := []struct {
		name      string
		errs      []error // what the calls return, in turn; then nil
		wantCalls int
		wantErr   error
	}{
		{name: "at once", wantCalls: 1},
		{name: "coordinator not there yet", errs: []error{kerr.CoordinatorNotAvailable, fmt.Errorf("describe: %w", kerr.CoordinatorLoadInProgress)}, wantCalls: 3},
		{name: "other errors are not retried", errs: []error{other}, wantCalls: 1, wantErr: other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			v, err := whileCoordinatorStarts(context.Background(), func() (int, error) {
				calls++
				if calls <= len(tt.errs) {
					return 0, tt.errs[calls-1]
				}
				return 42, nil
			})
			if calls != tt.wantCalls || !errors.Is(err, tt.wantErr) || (err == nil && v != 42) {
				t.Fatalf("calls %d, value %d, error %v; want %d calls, error %v", calls, v, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
}
