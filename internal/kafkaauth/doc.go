// Package kafkaauth turns TLS and SASL settings into franz-go client options. It is the one place
// both the public topology package and the internal kafkaconf package build a secured client
// from, so neither copies the other's mechanism switch.
package kafkaauth
