// Package memstore is a small in-memory storage.Store the broker core uses
// until (and unless) it is given another implementation. It keeps everything
// in RAM, never trims below what TrimBefore asks and persists nothing.
package memstore
