// Package helm holds the tests of enricher's Helm chart (./enricher): every object the chart
// renders is decoded strictly with the Kubernetes API types, so a misspelt or unknown field
// fails, and every variable it sets is one `enricher run` reads. It is a module of its own so
// that Helm and the Kubernetes API types stay out of enricher's.
package helm
