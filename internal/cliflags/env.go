package cliflags

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Prefix starts every environment variable that sets a flag.
const Prefix = "EDXBUS_"

// EnvName is the environment variable that sets a flag.
func EnvName(flag string) string {
	return Prefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// BindEnv applies EDXBUS_* variables to every flag of cmd (local and
// inherited) that was not set on the command line. It is called from the root
// command's PersistentPreRunE, so it covers every subcommand without any of
// them having to remember it.
func BindEnv(cmd *cobra.Command) error {
	var errs []string
	apply := func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		v, ok := os.LookupEnv(EnvName(f.Name))
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			shown := fmt.Sprintf("%q", v)
			if SecretFlag(f.Name) {
				shown = "(value hidden)"
			}
			errs = append(errs, fmt.Sprintf("%s=%s: %v", EnvName(f.Name), shown, err))
		}
	}
	cmd.Flags().VisitAll(apply)
	if len(errs) > 0 {
		return fmt.Errorf("bad environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// SecretFlag reports whether a flag's value may hold a credential, so that
// error messages never echo it.
func SecretFlag(name string) bool {
	for _, s := range []string{"token", "password", "secret", "dsn", "url"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// AnnotateEnv appends the environment variable to each flag's usage so that
// --help shows both ways to set it.
func AnnotateEnv(cmd *cobra.Command) {
	annotate := func(f *pflag.Flag) {
		if f.Name == "help" || strings.Contains(f.Usage, Prefix) {
			return
		}
		f.Usage = fmt.Sprintf("%s [%s]", f.Usage, EnvName(f.Name))
	}
	cmd.Flags().VisitAll(annotate)
	cmd.PersistentFlags().VisitAll(annotate)
	for _, c := range cmd.Commands() {
		AnnotateEnv(c)
	}
}
