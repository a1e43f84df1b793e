package app

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"
)

// LogConfig is how the process logs.
type LogConfig struct {
	// Level: debug, info, warn or error.
	Level string
	// Format: json, pretty, or auto (pretty on a terminal).
	Format string
}

// DefaultLogConfig logs info and above, pretty on a terminal.
func DefaultLogConfig() LogConfig { return LogConfig{Level: "info", Format: "auto"} }

// RegisterFlags binds --log-level and --log-format.
func (c *LogConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Level, "log-level", c.Level, "log level: debug, info, warn, error")
	fs.StringVar(&c.Format, "log-format", c.Format, "log format: json, pretty, or auto (pretty on a terminal)")
}

// Logger builds the process logger writing to out.
func (c LogConfig) Logger(out io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.Level)
	}
	pretty := false
	switch c.Format {
	case "json":
	case "pretty":
		pretty = true
	case "auto", "":
		if f, ok := out.(*os.File); ok {
			pretty = isatty.IsTerminal(f.Fd())
		}
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q: want json, pretty or auto", c.Format)
	}
	if pretty {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger(), nil
}
