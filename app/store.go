package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/store"
)

// StoreConfig is the catalog store.
type StoreConfig struct {
	// DSN: sqlite:PATH, postgres://…, mysql://… or PostgreSQL keywords
	// (host=… dbname=…).
	DSN string
	// PasswordFile holds the PostgreSQL or MySQL password (replaces the
	// DSN's).
	PasswordFile string
	// MaxGroup is how many applies share one transaction at most (group
	// commit; 1: one transaction per event).
	MaxGroup int
}

// DefaultStoreConfig is a SQLite file under ./.edxbus.
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{DSN: "sqlite:./.edxbus/catalog.db", MaxGroup: store.DefaultMaxGroup}
}

// RegisterFlags binds --store-dsn and --store-password-file.
func (c *StoreConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.DSN, "store-dsn", c.DSN, "catalog store: sqlite:PATH, postgres://…, mysql://… or host=… dbname=… (PostgreSQL keywords)")
	c.RegisterPasswordFlag(fs)
	fs.IntVar(&c.MaxGroup, "store-max-group", c.MaxGroup, "most events applied in one store transaction, each in a savepoint of its own (group commit: events that arrive while a transaction is written share the next one); 1 writes one transaction per event")
}

// RegisterPasswordFlag binds --store-password-file alone, for commands that
// word --store-dsn their own way.
func (c *StoreConfig) RegisterPasswordFlag(fs *pflag.FlagSet) {
	fs.StringVar(&c.PasswordFile, "store-password-file", c.PasswordFile, "file holding the PostgreSQL or MySQL password (replaces the DSN's; PGPASSWORD and PGPASSFILE work too for PostgreSQL)")
}

// Open opens (and migrates) the store. The default SQLite file's directory
// is created; a directory the operator named must exist, so that a typo in
// the path fails instead of starting an empty catalog somewhere else.
func (c StoreConfig) Open(ctx context.Context, extra ...store.Option) (*store.Store, error) {
	if path, ok := strings.CutPrefix(c.DSN, "sqlite:"); ok && path != ":memory:" {
		dir := filepath.Dir(path)
		if c.DSN == DefaultStoreConfig().DSN {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("--store-dsn: %w", err)
			}
		} else if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--store-dsn %s: directory %s does not exist (create it first)", c.DSN, dir)
		}
	}
	opts := append([]store.Option{store.WithGroupCommit(c.MaxGroup)}, extra...)
	if c.PasswordFile != "" {
		password, err := ReadSecretFile("--store-password-file", c.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, store.WithPassword(password))
	}
	return store.Open(ctx, c.DSN, opts...)
}

// Label names the store without its credentials.
func (c StoreConfig) Label() string {
	if path, ok := strings.CutPrefix(c.DSN, "sqlite:"); ok {
		return path
	}
	return "from --store-dsn"
}
