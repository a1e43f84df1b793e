package cliflags

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// newProbeCommand is a root with one subcommand whose flags record what the
// command finally saw, so the tests observe env binding through Execute.
func newProbeCommand(seen *struct {
	addr  string
	count int
}) *cobra.Command {
	root := &cobra.Command{
		Use:               "probe",
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return BindEnv(cmd) },
	}
	sub := &cobra.Command{Use: "sub", RunE: func(*cobra.Command, []string) error { return nil }}
	sub.Flags().StringVar(&seen.addr, "listen-addr", "127.0.0.1:1", "where to listen")
	sub.Flags().IntVar(&seen.count, "count", 1, "how many")
	root.AddCommand(sub)
	AnnotateEnv(root)
	return root
}

func TestEnvBinding(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantAddr  string
		wantCount int
		wantErr   string
	}{
		{name: "defaults", args: []string{"sub"}, wantAddr: "127.0.0.1:1", wantCount: 1},
		{name: "env sets flags", env: map[string]string{"EDXBUS_LISTEN_ADDR": "0.0.0.0:9", "EDXBUS_COUNT": "7"},
			args: []string{"sub"}, wantAddr: "0.0.0.0:9", wantCount: 7},
		{name: "command line wins", env: map[string]string{"EDXBUS_COUNT": "7"},
			args: []string{"sub", "--count", "3"}, wantAddr: "127.0.0.1:1", wantCount: 3},
		{name: "bad env value is an error naming the variable", env: map[string]string{"EDXBUS_COUNT": "many"},
			args: []string{"sub"}, wantErr: `EDXBUS_COUNT="many"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var seen struct {
				addr  string
				count int
			}
			cmd := newProbeCommand(&seen)
			cmd.SetArgs(tt.args)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if seen.addr != tt.wantAddr || seen.count != tt.wantCount {
				t.Fatalf("got addr=%q count=%d, want %q %d", seen.addr, seen.count, tt.wantAddr, tt.wantCount)
			}
		})
	}
}

func TestHelpNamesEnvVars(t *testing.T) {
	var seen struct {
		addr  string
		count int
	}
	cmd := newProbeCommand(&seen)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"sub", "--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[EDXBUS_LISTEN_ADDR]", "[EDXBUS_COUNT]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help does not mention %s:\n%s", want, out.String())
		}
	}
}
