package app

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A SQLite path in a directory that does not exist is an error, not a new
// empty catalog in a directory created by mistake.
func TestStoreDirectoryMustExist(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "dir")
	_, err := StoreConfig{DSN: "sqlite:" + filepath.Join(missing, "x.db")}.Open(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open in a missing directory: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("the directory was created: %v", err)
	}
	st, err := StoreConfig{DSN: "sqlite:" + filepath.Join(dir, "x.db")}.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
}

// A busy port names the flags that move the broker.
func TestStartBrokerNamesTheFlags(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := DefaultBrokerConfig()
	c.Addr, c.AdminAddr, c.DataDir = "127.0.0.1:0", l.Addr().String(), ""
	b, err := StartBroker(context.Background(), c, zerolog.Nop())
	if err == nil {
		_ = b.Close()
		t.Fatal("the broker started on a busy admin port")
	}
	if !strings.Contains(err.Error(), "--admin-addr "+l.Addr().String()) {
		t.Fatalf("error %q does not name --admin-addr", err)
	}
}
