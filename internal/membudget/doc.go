// Package membudget splits a process's memory budget (--memory-limit) between the parts of
// enricher that grow with its state: the score caches and each local store's LevelDB write
// buffers and block cache. Go's own limit (GOMEMLIMIT) bounds the rest; goleveldb is Go, so its
// buffers count against it too.
package membudget
