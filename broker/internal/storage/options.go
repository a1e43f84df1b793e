package storage

import "fmt"

// Option configures the disk store opened by Open.
type Option func(*diskConfig)

type diskConfig struct {
	segmentSize int64
	sync        bool
}

// DefaultSegmentSize is the size at which a topic's log starts a new segment
// file unless WithSegmentSize says otherwise.
const DefaultSegmentSize = 64 << 20

func defaultDiskConfig() diskConfig {
	return diskConfig{segmentSize: DefaultSegmentSize, sync: true}
}

func (c diskConfig) validate() error {
	if c.segmentSize <= 0 {
		return fmt.Errorf("storage: segment size must be positive, got %d", c.segmentSize)
	}
	return nil
}

// WithSegmentSize sets the size in bytes past which a log rolls to a new
// segment file. Retention drops whole segments, so smaller segments trim
// closer to the requested id at the cost of more files. A single entry larger
// than the limit still fits: it gets a segment of its own.
func WithSegmentSize(n int64) Option { return func(c *diskConfig) { c.segmentSize = n } }

// WithSync turns fsync off when false. Without fsync a receipted entry can be
// lost on power failure (not on a process crash); use it for benchmarks and
// throwaway data only.
func WithSync(on bool) Option { return func(c *diskConfig) { c.sync = on } }
