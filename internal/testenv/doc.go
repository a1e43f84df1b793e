// Package testenv gives tests the real services they run against: it finds
// the shared Redis, PostgreSQL, MySQL or MariaDB and a Python with Apache
// Avro through EDXBUS_TEST_* environment variables, gives a test a MySQL
// database of its own (MySQLDatabase), starts throwaway PostgreSQL and
// MariaDB servers a test may stop, kill or put behind TLS (StartPostgres,
// StartMariaDB), and makes test certificate authorities and certificates
// (NewCA).
//
// On a developer machine a missing service skips the test that needs it. Under
// CI=true a missing service fails the test instead, because a skipped test is
// not a passing test and CI's .ci/run is expected to have installed everything.
package testenv
