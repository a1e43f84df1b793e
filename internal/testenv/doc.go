// Package testenv finds the real services the tests run against (Redis,
// PostgreSQL, a Python with Apache Avro) through EDXBUS_TEST_* environment
// variables.
//
// On a developer machine a missing service skips the test that needs it. Under
// CI=true a missing service fails the test instead, because a skipped test is
// not a passing test and CI's .ci/run is expected to have installed everything.
package testenv
