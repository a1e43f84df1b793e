package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a throwaway PostgreSQL server of one test, for tests that stop,
// crash or reconfigure the database (the shared one of PostgresDSN must stay
// up). Its port stays the same across Stop, Start, Restart and Kill, so DSNs
// handed out remain valid.
//
//	pg := testenv.StartPostgres(t)      // trust auth, 127.0.0.1, a free port
//	st, err := store.Open(ctx, pg.DSN()) // …/postgres?sslmode=disable
//	pg.Restart(t)                       // fast shutdown, start again
//	pg.Kill(t)                          // SIGKILL every server process…
//	pg.Start(t)                         // …and come back through crash recovery
//
//	certFile, keyFile := ca.Issue(t, "localhost", "localhost", "127.0.0.1")
//	pg := testenv.StartPostgres(t, testenv.WithPostgresSSL(certFile, keyFile))
//	dsn := pg.URL("localhost", "sslmode=verify-full&sslrootcert="+ca.CertFile())
//
// The binaries come from EDXBUS_TEST_PG_BIN or the newest
// /usr/lib/postgresql/*/bin (Debian's layout; .ci/run installs the postgresql
// package). initdb and postgres refuse to run as root, so under root the
// server runs as the "postgres" OS user, in a directory under os.TempDir()
// that user owns. The server is killed and its directory removed when the
// test ends; the log is printed if the test failed.
type Postgres struct {
	bin      string // directory of initdb, postgres
	dir      string // owned by the server's user: data/, the log, sockets
	port     int
	cred     *syscall.Credential // nil when not root
	uid, gid int
	settings []string // -c name=value
	ssl      bool
	password string // "": TCP connections are trusted
	cmd      *exec.Cmd
	done     chan struct{}
}

// PostgresOption configures StartPostgres.
type PostgresOption func(*Postgres)

// WithPostgresSSL turns TLS on with this server certificate and key (PEM
// files). They are copied into the server's directory with the ownership and
// 0600 mode PostgreSQL insists on, so any test-owned files will do. pg_hba
// trusts host connections with and without TLS; choose with sslmode.
func WithPostgresSSL(certFile, keyFile string) PostgresOption {
	return func(p *Postgres) {
		p.ssl = true
		p.settings = append(p.settings, "ssl=on", "ssl_cert_file="+certFile, "ssl_key_file="+keyFile)
	}
}

// WithPostgresPassword makes TCP connections prove this password for the
// "postgres" user (scram-sha-256), so a test can show a wrong or missing
// password is refused; the server's own socket stays trusted.
func WithPostgresPassword(password string) PostgresOption {
	return func(p *Postgres) { p.password = password }
}

// WithPostgresSetting adds a server setting (postgres -c name=value).
func WithPostgresSetting(name, value string) PostgresOption {
	return func(p *Postgres) { p.settings = append(p.settings, name+"="+value) }
}

// StartPostgres initialises a fresh cluster and starts it, or calls
// Unavailable when no PostgreSQL server binaries are installed.
func StartPostgres(t testing.TB, opts ...PostgresOption) *Postgres {
	t.Helper()
	bin := postgresBin()
	if bin == "" {
		Unavailable(t, "no PostgreSQL server binaries (initdb, postgres) under /usr/lib/postgresql/*/bin "+
			"(apt-get install postgresql, or set EDXBUS_TEST_PG_BIN)")
	}
	p := &Postgres{bin: bin, uid: -1, gid: -1}
	// fsync buys nothing here: a killed server loses no page the kernel
	// already holds, and the tests crash processes, never the machine.
	p.settings = []string{"listen_addresses=127.0.0.1", "fsync=off", "max_connections=200"}
	for _, o := range opts {
		o(p)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			Unavailable(t, "running as root and no postgres OS user to run the server as: %v", err)
		}
		p.uid, _ = strconv.Atoi(u.Uid)
		p.gid, _ = strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(p.uid), Gid: uint32(p.gid)}
	}
	dir, err := os.MkdirTemp("", "edxbus-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- PostgreSQL log (%s):\n%s", p.LogFile(), p.Log())
		}
		_ = os.RemoveAll(dir)
	})
	p.chown(t, dir)
	for i, s := range p.settings {
		if name, file, ok := strings.Cut(s, "="); ok && (name == "ssl_cert_file" || name == "ssl_key_file") {
			p.settings[i] = name + "=" + p.copyOwned(t, file, name+".pem")
		}
	}
	auth := []string{"-A", "trust"}
	if p.password != "" {
		pwFile := filepath.Join(p.dir, "pwfile")
		if err := os.WriteFile(pwFile, []byte(p.password+"\n"), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		p.chown(t, pwFile)
		defer os.Remove(pwFile)
		auth = []string{"--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=" + pwFile}
	}
	initdb := append([]string{"-D", p.dataDir(), "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"}, auth...)
	if out, err := p.command(filepath.Join(bin, "initdb"), initdb...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: initdb: %v\n%s", err, out)
	}
	// The free port may be taken between probing and binding: try a few.
	for attempt := 0; ; attempt++ {
		p.port = freePort(t)
		err := p.start()
		if err == nil {
			return p
		}
		if attempt == 2 || !strings.Contains(err.Error(), "could not bind") {
			t.Fatalf("testenv: start PostgreSQL: %v", err)
		}
	}
}

// DSN is a URL for the "postgres" database as superuser "postgres" over
// 127.0.0.1: sslmode=disable, or sslmode=require when TLS is on.
func (p *Postgres) DSN() string {
	mode := "sslmode=disable"
	if p.ssl {
		mode = "sslmode=require"
	}
	return p.URL("127.0.0.1", mode)
}

// URL is a postgres:// URL for the "postgres" database with host (127.0.0.1,
// or a name that resolves to it, such as the certificate's) and query.
func (p *Postgres) URL(host, query string) string {
	return fmt.Sprintf("postgres://postgres@%s/postgres?%s", net.JoinHostPort(host, strconv.Itoa(p.port)), query)
}

// Addr is the server's host:port.
func (p *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// LogFile is the server log, appended to across restarts.
func (p *Postgres) LogFile() string { return filepath.Join(p.dir, "postgres.log") }

// Log returns the server log so far.
func (p *Postgres) Log() string {
	b, _ := os.ReadFile(p.LogFile())
	return string(b)
}

// Start starts a stopped or killed server and waits until it accepts
// connections (after crash recovery, if it was killed).
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	if err := p.start(); err != nil {
		t.Fatalf("testenv: start PostgreSQL: %v", err)
	}
}

// Stop shuts the server down cleanly (fast shutdown: clients are
// disconnected, a checkpoint is written).
func (p *Postgres) Stop(t testing.TB) {
	t.Helper()
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("testenv: PostgreSQL ignored a fast shutdown for 30s\n%s", p.Log())
	}
}

// Restart stops the server cleanly and starts it again.
func (p *Postgres) Restart(t testing.TB) {
	t.Helper()
	p.Stop(t)
	p.Start(t)
}

// Kill sends SIGKILL to the postmaster and every backend at once, as an
// OOM killer or a lost container would, and waits for them to die. The next
// Start runs crash recovery from the write-ahead log.
func (p *Postgres) Kill(t testing.TB) {
	t.Helper()
	p.kill()
}

func (p *Postgres) kill() {
	if !p.running() {
		return
	}
	// The server runs in its own process group, but every backend makes
	// itself a group (and session) leader, so they are killed one by one
	// too, found as the postmaster's children before it dies: none may be
	// left answering its client or holding the shared memory the next
	// start must claim.
	pid := p.cmd.Process.Pid
	kids := childrenOf(pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for _, kid := range kids {
		_ = syscall.Kill(kid, syscall.SIGKILL)
	}
	<-p.done
	for deadline := time.Now().Add(10 * time.Second); (groupAlive(pid) || anyAlive(kids)) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *Postgres) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// start starts the server and waits until it accepts connections; an error
// carries what the server logged meanwhile.
func (p *Postgres) start() error {
	if p.running() {
		return nil
	}
	log, err := os.OpenFile(p.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	logged, _ := log.Seek(0, io.SeekEnd)
	failed := func(what string) error {
		return fmt.Errorf("postgres %s:\n%s", what, p.Log()[logged:])
	}
	args := []string{"-D", p.dataDir(), "-p", strconv.Itoa(p.port), "-k", p.dir}
	for _, s := range p.settings {
		args = append(args, "-c", s)
	}
	cmd := p.command(filepath.Join(p.bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(p.done)
	deadline := time.Now().Add(60 * time.Second)
	for {
		// pg_isready: 0 accepting, 1 rejecting (starting up, recovering).
		if exec.Command(filepath.Join(p.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port)).Run() == nil {
			return nil
		}
		select {
		case <-p.done:
			return failed("exited during start-up")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return failed("did not accept connections within 60s")
		}
	}
}

func (p *Postgres) dataDir() string { return filepath.Join(p.dir, "data") }

// command runs name as the server's OS user.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Dir = p.dir
	return cmd
}

func (p *Postgres) chown(t testing.TB, path string) {
	t.Helper()
	if p.cred == nil {
		return
	}
	if err := os.Chown(path, p.uid, p.gid); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// copyOwned copies src into the server's directory, readable only by the
// server's user (PostgreSQL refuses a key file others can read).
func (p *Postgres) copyOwned(t testing.TB, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dst := filepath.Join(p.dir, name)
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p.chown(t, dst)
	return dst
}

// postgresBin is EDXBUS_TEST_PG_BIN or the newest Debian-layout bin
// directory holding initdb, postgres and pg_isready; "" when none does.
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	if env := os.Getenv("EDXBUS_TEST_PG_BIN"); env != "" {
		dirs = []string{env}
	}
	for _, d := range dirs {
		ok := true
		for _, b := range []string{"initdb", "postgres", "pg_isready"} {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				ok = false
			}
		}
		if ok {
			return d
		}
	}
	return ""
}

func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func freePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// groupAlive reports whether a process of the group is still running. Zombies
// do not count: they hold no shared memory, and where PID 1 reaps nothing (a
// bare container) they never go away. Without /proc it reports false.
func groupAlive(pgid int) bool {
	return len(processes(func(_, pgrp int) bool { return pgrp == pgid })) > 0
}

// childrenOf lists the live processes whose parent is pid.
func childrenOf(pid int) []int {
	return processes(func(ppid, _ int) bool { return ppid == pid })
}

// anyAlive reports whether one of pids is a live (not zombie) process.
func anyAlive(pids []int) bool {
	for _, pid := range pids {
		if len(processes(func(int, int) bool { return true }, pid)) > 0 {
			return true
		}
	}
	return false
}

// processes lists the live processes (of only, when given) whose parent
// and group match.
func processes(match func(ppid, pgrp int) bool, only ...int) []int {
	var stats []string
	for _, pid := range only {
		stats = append(stats, "/proc/"+strconv.Itoa(pid)+"/stat")
	}
	if len(only) == 0 {
		stats, _ = filepath.Glob("/proc/[0-9]*/stat")
	}
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		pgrp, _ := strconv.Atoi(fields[2])
		if match(ppid, pgrp) {
			pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
			out = append(out, pid)
		}
	}
	return out
}
