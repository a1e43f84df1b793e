package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/edxbus/edxbus/app"
)

func newStoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Operate on the catalog store",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newResetGuardCommand())
	return cmd
}

func newResetGuardCommand() *cobra.Command {
	s := app.DefaultStoreConfig()
	cmd := &cobra.Command{
		Use:   "reset-guard COURSE_RUN_KEY",
		Short: "Let the next event for a course run apply, whatever its time",
		Long: `Each course run remembers the time of the newest event applied to it, and ignores older ones as
stale. An event dated far in the future (sent before --max-event-time-skew refused such events, or
with it off) leaves that guard ahead of every legitimate edit. reset-guard sets it back to 1970: the
run keeps its data until its next event, which then applies. Replay the run's recent events
(consume --replay-from … --replay-mode reapply) to rebuild it at once.`,
		Example: "  edxbus store reset-guard course-v1:edX+DemoX+2026 --store-dsn postgres://discovery@db/discovery",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := s.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			reset, err := st.ResetCourseRunGuard(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: the guard held %s (event %s); the next event for the run applies\n",
				args[0], reset.Was.UTC().Format(time.RFC3339), reset.EventID)
			return err
		},
	}
	s.RegisterFlags(cmd.Flags())
	return cmd
}
