package kafkax

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/topics"
)

// EnsureTopics creates whichever of names' topics do not exist yet, with
// partitions partitions, replication factor rf (-1: broker default) and the
// cleanup.policy their role needs (incidents compacted, the rest deleted by
// retention); the state changelog gets the input topic's partition count
// when the input exists. Existing topics are left as they are, whatever their settings:
// changing partition counts would move keys between partitions. It is
// idempotent and tolerates another instance creating the same topics
// concurrently.
func EnsureTopics(ctx context.Context, cl *kgo.Client, names topics.Names, partitions int32, rf int16) error {
	if err := names.Validate(); err != nil {
		return fmt.Errorf("kafkax: topic names: %w", err)
	}
	// Not closed: closing a kadm.Client closes the kgo.Client it wraps,
	// which belongs to the caller.
	adm := kadm.NewClient(cl)
	existing, err := adm.ListTopics(ctx, names.All()...)
	if err != nil {
		return fmt.Errorf("kafkax: listing topics: %w", err)
	}
	var errs []error
	for _, role := range topics.Roles() {
		name := names.Name(role)
		if d, ok := existing[name]; ok && d.Err == nil {
			continue
		}
		policy := role.CleanupPolicy()
		cfg := map[string]*string{"cleanup.policy": &policy}
		n := partitions
		if in, ok := existing[names.Input]; role == topics.State && ok && in.Err == nil && len(in.Partitions) > 0 {
			// The state changelog mirrors the input topic partition for
			// partition, whatever the input was created with.
			n = int32(len(in.Partitions))
		}
		resp, err := adm.CreateTopic(ctx, n, rf, cfg, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("kafkax: creating topic %s (%s): %w", name, role, err))
		}
	}
	return errors.Join(errs...)
}
