package store

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/edxbus/edxbus/internal/testenv"
)

// Every shape a DSN with a password can take, well-formed or not, is
// redacted in errors; what is not secret stays to help the reader.
func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ dsn, keep string }{
		{"postgres://app:s3cret@db:5432/catalog", "postgres://app:xxxxx@db:5432/catalog"},
		{"postgres://app:s3cret%zz@db/catalog", "postgres://xxxxx@db/catalog"},    // bad escape: url.Parse fails
		{"pg://app:s3cret@db/catalog", "pg://app:xxxxx@db/catalog"},               // unknown scheme
		{"postgres://app:pa/s3cret@db/catalog", "postgres://xxxxx@db/catalog"},    // unescaped slash
		{"postgres://app:s3cret@x@db/catalog", "postgres://app:xxxxx@db/catalog"}, // unescaped @
		{"postgres://app@db/catalog?password=s3cret&sslmode=verify-full", "sslmode=verify-full"},
		{"host=db user=app password=s3cret dbname=catalog", "host=db user=app password=xxxxx dbname=catalog"},
		{"host=db password='s3 cret' dbname=catalog", "host=db password=xxxxx dbname=catalog"},
		{"host=db PASSWORD = s3cret", "host=db PASSWORD = xxxxx"},
		{"host=db sslpassword=s3cret sslkey=k.pem", "sslpassword=xxxxx sslkey=k.pem"},
		{"mysql://root:s3cret@localhost/db", "mysql://root:xxxxx@localhost/db"},
	} {
		got := redactDSN(tc.dsn)
		if strings.Contains(got, "s3") || strings.Contains(got, "cret") {
			t.Errorf("redactDSN(%q) = %q: the password shows", tc.dsn, got)
		}
		if !strings.Contains(got, tc.keep) {
			t.Errorf("redactDSN(%q) = %q, want it to keep %q", tc.dsn, got, tc.keep)
		}
	}
}

// Open refuses what it cannot use, and its errors never carry the password,
// whatever the DSN looks like.
func TestOpenRejectsBadDSN(t *testing.T) {
	for _, dsn := range []string{
		"", "sqlite:",
		"mysql://app:s3cret@127.0.0.1:1/catalog?timeout=1s",
		"mysql://app:s3cret%zz@127.0.0.1/catalog",
		"mysql://app:s3cret@127.0.0.1/",
		"mysql://app:s3cret@127.0.0.1/catalog?parseTime=false",
		"mysql://app:s3cret@127.0.0.1/catalog?tls=custom",
		"mysql://app:s3cret@127.0.0.1/catalog?tls=bogus",
		"pg://app:s3cret@db/catalog",
		"postgres://app:s3cret%zz@127.0.0.1:1/catalog",
		"host=127.0.0.1 port=1 user=app password=s3cret dbname=catalog connect_timeout=1",
		"postgres://app:s3cret@127.0.0.1:1/catalog?connect_timeout=1",
		"whatever:app:s3cret@db",
	} {
		_, err := Open(context.Background(), dsn)
		if err == nil {
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q): the error shows the password: %v", dsn, err)
		}
	}
}

// A libpq keyword DSN opens PostgreSQL.
func TestKeywordDSNOpensPostgres(t *testing.T) {
	u, err := url.Parse(testenv.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	kv := []string{"host=" + u.Hostname(), "dbname=" + strings.TrimPrefix(u.Path, "/")}
	if p := u.Port(); p != "" {
		kv = append(kv, "port="+p)
	}
	if u.User != nil {
		kv = append(kv, "user="+u.User.Username())
		if pw, ok := u.User.Password(); ok {
			kv = append(kv, "password='"+strings.ReplaceAll(pw, "'", `\'`)+"'")
		}
	}
	if m := u.Query().Get("sslmode"); m != "" {
		kv = append(kv, "sslmode="+m)
	}
	s, err := Open(context.Background(), strings.Join(kv, " "))
	if err != nil {
		t.Fatalf("Open(keyword DSN): %v", err)
	}
	defer s.Close()
	if s.Dialect() != "postgres" {
		t.Fatalf("dialect %s, want postgres", s.Dialect())
	}
}

func FuzzRedactDSN(f *testing.F) {
	for _, seed := range []string{"s3cret", "p@ss/w:rd", "a'b c", "x%zz", "&sslmode=disable"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, pw string) {
		const marker = "MARKERq7"
		secret := marker + pw
		for _, dsn := range []string{
			"postgres://app:" + secret + "@db/catalog",
			"postgres://app:" + url.QueryEscape(secret) + "@db/catalog",
			"host=db user=app password=" + secret + " dbname=catalog",
			"host=db password='" + strings.ReplaceAll(secret, "'", `\'`) + "' dbname=catalog",
			"postgres://app@db/catalog?password=" + url.QueryEscape(secret),
		} {
			if got := redactDSN(dsn); strings.Contains(got, marker) {
				t.Fatalf("redactDSN(%q) = %q: the password shows", dsn, got)
			}
		}
	})
}

// WithPassword puts the password into either DSN form, replacing one already
// there, and refuses SQLite.
func TestWithPasswordForms(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://app@db/catalog?sslmode=require", "postgres://app:n%27ew%20pw@db/catalog?sslmode=require"},
		{"postgres://app:old@db/catalog?password=old2", "postgres://app:n%27ew%20pw@db/catalog"},
		{"postgres://db/catalog", "postgres://:n%27ew%20pw@db/catalog"},
		{"host=db user=app password=old dbname=catalog", `host=db user=app  dbname=catalog password='n\'ew pw'`},
		{"host=db dbname=catalog", `host=db dbname=catalog password='n\'ew pw'`},
		{"host=db sslpassword=keypw password=old", `host=db sslpassword=keypw  password='n\'ew pw'`},
	} {
		got, err := withPassword(tc.dsn, "n'ew pw")
		if err != nil || got != tc.want {
			t.Errorf("withPassword(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
		}
	}
	if _, err := Open(context.Background(), "sqlite:"+t.TempDir()+"/x.db", WithPassword("pw")); err == nil {
		t.Error("a password for SQLite was accepted")
	}
}

// The password given apart from the DSN is the one PostgreSQL checks.
func TestWithPasswordAuthenticates(t *testing.T) {
	pg := testenv.StartPostgres(t, testenv.WithPostgresPassword("pg-secret-1"))
	if _, err := Open(context.Background(), pg.DSN()+"&connect_timeout=5"); err == nil {
		t.Fatal("connected without the password")
	}
	_, err := Open(context.Background(), pg.DSN(), WithPassword("wrong-pw-7x"))
	if err == nil {
		t.Fatal("connected with a wrong password")
	}
	if strings.Contains(err.Error(), "wrong-pw-7x") {
		t.Errorf("the error shows the password: %v", err)
	}
	s, err := Open(context.Background(), pg.DSN(), WithPassword("pg-secret-1"))
	if err != nil {
		t.Fatalf("with the password: %v", err)
	}
	s.Close()
}
