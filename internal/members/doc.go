// Package members tells which replica of a consumer group owns which partition, and where that
// replica's web server answers.
//
// Every replica advertises itself in the user data of its consumer-group membership (sarama's
// Consumer.Group.Member.UserData, sent with every JoinGroup): a small JSON Advert with a
// per-process id and the replica's web address. Any client of the cluster then reads the
// group back with one DescribeGroups request: its state (a group that is not Stable is
// rebalancing, and its assignment is about to change), its members with their adverts, and the
// partitions the leader assigned to each. This is how one replica routes a key lookup to the
// owner of the key's partition, and how the group page lists every member.
package members
