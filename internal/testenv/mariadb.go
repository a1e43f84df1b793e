package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MariaDB is a throwaway MariaDB server of one test, for tests that kill the
// database or put it behind TLS (the shared one of MySQLDSN must stay up).
// Its port stays the same across Kill and Start, so DSNs handed out remain
// valid.
//
//	db := testenv.StartMariaDB(t)       // root without a password, 127.0.0.1, a free port
//	st, err := store.Open(ctx, db.DSN()) // mysql://root@127.0.0.1:PORT/test
//	db.Kill(t)                          // SIGKILL…
//	db.Start(t)                         // …and come back through InnoDB crash recovery
//
// The binaries are mariadbd and mariadb-install-db (Debian's mariadb-server
// package, which .ci/run installs), from PATH or /usr/sbin and /usr/bin;
// MySQL's own server is not supported here (its initialisation differs).
// mariadbd runs as the "mysql" OS user when the test runs as root, in a
// directory under os.TempDir() that user owns. The server is killed and its
// directory removed when the test ends; the log is printed if the test
// failed.
type MariaDB struct {
	bin      string // mariadbd
	dir      string // owned by the server's user: data/, the log, the socket
	port     int
	asUser   string // "mysql" under root, "" otherwise
	uid, gid int
	settings []string // --name=value
	cmd      *exec.Cmd
	done     chan struct{}
}

// MariaDBOption configures StartMariaDB.
type MariaDBOption func(*MariaDB)

// WithMariaDBSSL turns TLS on with this server certificate and key (PEM
// files, copied into the server's directory). Plain connections are still
// accepted; choose with the DSN's tls=.
func WithMariaDBSSL(certFile, keyFile string) MariaDBOption {
	return func(m *MariaDB) { m.settings = append(m.settings, "ssl-cert="+certFile, "ssl-key="+keyFile) }
}

// WithMariaDBSetting adds a server option (mariadbd --name=value).
func WithMariaDBSetting(name, value string) MariaDBOption {
	return func(m *MariaDB) { m.settings = append(m.settings, name+"="+value) }
}

// StartMariaDB initialises a fresh data directory, starts the server and
// creates the database "test", or calls Unavailable when no MariaDB server
// binaries are installed.
func StartMariaDB(t testing.TB, opts ...MariaDBOption) *MariaDB {
	t.Helper()
	bin, install := lookBin("mariadbd", "/usr/sbin"), lookBin("mariadb-install-db", "/usr/bin")
	if bin == "" || install == "" {
		Unavailable(t, "no MariaDB server binaries (mariadbd, mariadb-install-db; apt-get install mariadb-server)")
	}
	m := &MariaDB{bin: bin, uid: -1, gid: -1}
	// Flushing the log at every commit buys nothing here: a killed server
	// loses no page the kernel already holds, and the tests crash processes,
	// never the machine.
	m.settings = []string{"bind-address=127.0.0.1", "skip-name-resolve", "skip-log-bin",
		"innodb-buffer-pool-size=64M", "innodb-flush-log-at-trx-commit=2", "max-connections=300"}
	for _, o := range opts {
		o(m)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mysql")
		if err != nil {
			Unavailable(t, "running as root and no mysql OS user to run the server as: %v", err)
		}
		m.asUser = "mysql"
		m.uid, _ = strconv.Atoi(u.Uid)
		m.gid, _ = strconv.Atoi(u.Gid)
	}
	dir, err := os.MkdirTemp("", "edxbus-mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	m.dir = dir
	t.Cleanup(func() {
		m.kill()
		if t.Failed() {
			t.Logf("--- MariaDB log (%s):\n%s", m.LogFile(), m.Log())
		}
		_ = os.RemoveAll(dir)
	})
	m.chown(t, dir)
	for i, s := range m.settings {
		if name, file, ok := strings.Cut(s, "="); ok && (name == "ssl-cert" || name == "ssl-key") {
			m.settings[i] = name + "=" + m.copyOwned(t, file, name+".pem")
		}
	}
	args := []string{"--no-defaults", "--datadir=" + m.dataDir(), "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}
	if m.asUser != "" {
		args = append(args, "--user="+m.asUser)
	}
	if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: mariadb-install-db: %v\n%s", err, out)
	}
	// The free port may be taken between probing and binding: try a few.
	for attempt := 0; ; attempt++ {
		m.port = freePort(t)
		err := m.start()
		if err == nil {
			break
		}
		if attempt == 2 || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatalf("testenv: start MariaDB: %v", err)
		}
	}
	admin := OpenMySQL(t, "mysql://root@"+m.Addr()+"/")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE test"); err != nil {
		t.Fatalf("testenv: create database test: %v", err)
	}
	_ = admin.Close()
	return m
}

// DSN is a mysql:// URL for the database "test" as root over 127.0.0.1.
func (m *MariaDB) DSN() string { return m.URL("127.0.0.1", "") }

// URL is a mysql:// URL for the database "test" as root, with host
// (127.0.0.1, or a name that resolves to it, such as the certificate's) and
// query ("" for none).
func (m *MariaDB) URL(host, query string) string {
	u := fmt.Sprintf("mysql://root@%s/test", net.JoinHostPort(host, strconv.Itoa(m.port)))
	if query != "" {
		u += "?" + query
	}
	return u
}

// Addr is the server's host:port.
func (m *MariaDB) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)) }

// DataFile is the path of a file in the server's data directory, where
// the server writes the logs a plugin keeps (sql_errlog's sql_errors.log).
func (m *MariaDB) DataFile(name string) string { return filepath.Join(m.dataDir(), name) }

// LogFile is the server's error log, appended to across restarts.
func (m *MariaDB) LogFile() string { return filepath.Join(m.dir, "mariadb.log") }

// Log returns the server log so far.
func (m *MariaDB) Log() string {
	b, _ := os.ReadFile(m.LogFile())
	return string(b)
}

// Start starts a killed server and waits until it accepts connections
// (after crash recovery).
func (m *MariaDB) Start(t testing.TB) {
	t.Helper()
	if err := m.start(); err != nil {
		t.Fatalf("testenv: start MariaDB: %v", err)
	}
}

// Kill sends SIGKILL to the server, as an OOM killer or a lost container
// would, and waits for it to die. The next Start runs InnoDB's crash
// recovery.
func (m *MariaDB) Kill(t testing.TB) {
	t.Helper()
	m.kill()
}

func (m *MariaDB) kill() {
	if !m.running() {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	<-m.done
}

func (m *MariaDB) running() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// start starts the server and waits until it answers a query; an error
// carries what the server logged meanwhile.
func (m *MariaDB) start() error {
	if m.running() {
		return nil
	}
	log, err := os.OpenFile(m.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	m.chownFile(m.LogFile())
	logged, _ := log.Seek(0, io.SeekEnd)
	failed := func(what string) error {
		return fmt.Errorf("mariadbd %s:\n%s", what, m.Log()[logged:])
	}
	args := []string{"--no-defaults", "--datadir=" + m.dataDir(), "--port=" + strconv.Itoa(m.port),
		"--socket=" + filepath.Join(m.dir, "mariadb.sock"), "--pid-file=" + filepath.Join(m.dir, "mariadb.pid"),
		"--log-error=" + m.LogFile()}
	if m.asUser != "" {
		args = append(args, "--user="+m.asUser)
	}
	for _, s := range m.settings {
		args = append(args, "--"+s)
	}
	cmd := exec.Command(m.bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(m.done)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m.answers() {
			return nil
		}
		select {
		case <-m.done:
			return failed("exited during start-up")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.kill()
			return failed("did not accept connections within 60s")
		}
	}
}

// answers reports whether the server completes a handshake (an open port
// alone may be a server still recovering).
func (m *MariaDB) answers() bool {
	conn, err := net.DialTimeout("tcp", m.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	// The server speaks first: a handshake packet whose payload starts
	// with protocol version 10 (an error packet, 0xff, while it cannot
	// serve yet).
	head := make([]byte, 5)
	if _, err := io.ReadFull(conn, head); err != nil {
		return false
	}
	return head[4] == 10
}

func (m *MariaDB) dataDir() string { return filepath.Join(m.dir, "data") }

func (m *MariaDB) chown(t testing.TB, path string) {
	t.Helper()
	if m.uid < 0 {
		return
	}
	if err := os.Chown(path, m.uid, m.gid); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

func (m *MariaDB) chownFile(path string) {
	if m.uid >= 0 {
		_ = os.Chown(path, m.uid, m.gid)
	}
}

// copyOwned copies src into the server's directory, readable only by the
// server's user.
func (m *MariaDB) copyOwned(t testing.TB, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dst := filepath.Join(m.dir, name)
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	m.chown(t, dst)
	return dst
}

// lookBin finds a program on PATH or in dir.
func lookBin(name, dir string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}
