// Package avroparse parses Avro schemas that come from outside the process
// (a client's schema at the broker, a writer schema fetched from the
// cluster) with hamba/avro, each with a private name cache, so that one
// schema's named types never leak into another's.
//
// hamba/avro panics on some malformed schemas instead of returning an error
// (a field whose type is an empty union, with a default, found by fuzzing
// the broker's registry); Parse returns those as errors, so a bad schema
// cannot take a broker or a consumer down. It does nothing else: validation
// and resolution stay with the callers.
package avroparse
