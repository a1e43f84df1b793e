package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := newCLI()
	if err := c.root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "edxbus:", c.explain(err))
		os.Exit(1)
	}
}
