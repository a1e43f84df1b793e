// Package testenv gives tests the real services they run against: it finds
// the shared Redis, PostgreSQL and a Python with Apache Avro through
// EDXBUS_TEST_* environment variables, starts throwaway PostgreSQL servers a
// test may stop, kill or put behind TLS (StartPostgres), and makes test
// certificate authorities and certificates (NewCA).
//
// On a developer machine a missing service skips the test that needs it. Under
// CI=true a missing service fails the test instead, because a skipped test is
// not a passing test and CI's .ci/run is expected to have installed everything.
package testenv
