// Package cliflags is what the edxbus binaries share about their command
// lines: every flag can also be set by an EDXBUS_* environment variable
// (BindEnv, AnnotateEnv), and the configuration reference the README embeds
// is generated from the commands themselves (WriteReference).
//
// What it deliberately does not do: define flags (the configs in package
// app register their own) or know any command.
package cliflags
