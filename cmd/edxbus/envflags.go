package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const envPrefix = "EDXBUS_"

// envName is the environment variable that sets a flag.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv applies EDXBUS_* variables to every flag of cmd (local and
// inherited) that was not set on the command line. It is called from the root
// command's PersistentPreRunE, so it covers every subcommand without any of
// them having to remember it.
func bindEnv(cmd *cobra.Command) error {
	var errs []string
	apply := func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			shown := fmt.Sprintf("%q", v)
			if secretFlag(f.Name) {
				shown = "(value hidden)"
			}
			errs = append(errs, fmt.Sprintf("%s=%s: %v", envName(f.Name), shown, err))
		}
	}
	cmd.Flags().VisitAll(apply)
	if len(errs) > 0 {
		return fmt.Errorf("bad environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// secretFlag reports whether a flag's value may hold a credential, so that
// error messages never echo it.
func secretFlag(name string) bool {
	for _, s := range []string{"token", "password", "secret", "dsn", "url"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// annotateEnv appends the environment variable to each flag's usage so that
// --help shows both ways to set it.
func annotateEnv(cmd *cobra.Command) {
	annotate := func(f *pflag.Flag) {
		if f.Name == "help" || strings.Contains(f.Usage, envPrefix) {
			return
		}
		f.Usage = fmt.Sprintf("%s [%s]", f.Usage, envName(f.Name))
	}
	cmd.Flags().VisitAll(annotate)
	cmd.PersistentFlags().VisitAll(annotate)
	for _, c := range cmd.Commands() {
		annotateEnv(c)
	}
}
