package broker

import (
	"fmt"

	"github.com/hamba/avro/v2"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

// checkAvroCompatibility applies a Pulsar compatibility strategy to an Avro
// (or JSON, which Pulsar also checks as Avro) schema against the stored
// history, oldest first, using Avro schema resolution: BACKWARD = the new
// schema can read data written with the old, FORWARD = the old can read the
// new, FULL = both; the *_TRANSITIVE forms check every version, the others
// only the latest. It is the interim check until broker/internal/schemareg is
// wired in.
func checkAvroCompatibility(strategy string, next []byte, history []storedSchema) error {
	if len(history) == 0 || strategy == "ALWAYS_COMPATIBLE" {
		return nil
	}
	if strategy == "ALWAYS_INCOMPATIBLE" {
		return errorf(wire.ServerError_IncompatibleSchema, "Schema compatibility strategy is ALWAYS_INCOMPATIBLE")
	}
	ns, err := avro.ParseBytesWithCache(next, "", &avro.SchemaCache{})
	if err != nil {
		return errorf(wire.ServerError_IncompatibleSchema, "Invalid schema definition data for AVRO schema: %v", err)
	}
	against := history[len(history)-1:]
	switch strategy {
	case "BACKWARD_TRANSITIVE", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE":
		against = history
	}
	compat := avro.NewSchemaCompatibility()
	for _, old := range against {
		os, err := avro.ParseBytesWithCache(old.Data, "", &avro.SchemaCache{})
		if err != nil {
			return errorf(wire.ServerError_IncompatibleSchema, "stored schema version %d does not parse: %v", old.Version, err)
		}
		var cerr error
		switch strategy {
		case "BACKWARD", "BACKWARD_TRANSITIVE":
			cerr = compat.Compatible(ns, os)
		case "FORWARD", "FORWARD_TRANSITIVE":
			cerr = compat.Compatible(os, ns)
		default: // FULL, FULL_TRANSITIVE
			if cerr = compat.Compatible(ns, os); cerr == nil {
				cerr = compat.Compatible(os, ns)
			}
		}
		if cerr != nil {
			return errorf(wire.ServerError_IncompatibleSchema, "%s",
				fmt.Sprintf("Incompatible schema: not %s compatible with version %d: %v", strategy, old.Version, cerr))
		}
	}
	return nil
}
