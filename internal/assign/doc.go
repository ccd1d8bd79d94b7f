// Package assign is the consumer group's assignor: a sarama BalanceStrategy that places the
// job's partitions by where their state already is (docs/state-assignment.md).
//
// Every member reports, in its group membership, the changelog offset each of its local stores
// has reached. The leader gives each partition of input and scores, together, to one member:
// sticky, balanced, and only to a member whose store is within the acceptable lag. When the
// balanced owner of a partition is not caught up, the partition stays with a member that is and
// the balanced owner gets a warm-up copy to restore meanwhile; standby copies go to other
// members. A member learns its standby and warm-up copies from its assignment's user data.
//
// Compute is the plan itself, a pure function; Strategy wires it into sarama's group protocol.
package assign
