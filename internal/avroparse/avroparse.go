package avroparse

import (
	"fmt"

	"github.com/hamba/avro/v2"
)

// Parse parses schemaJSON with a private cache, a parser panic included as
// an error.
func Parse(schemaJSON []byte) (s avro.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("avro: the parser failed on this schema: %v", r)
		}
	}()
	return avro.ParseBytesWithCache(schemaJSON, "", &avro.SchemaCache{})
}
