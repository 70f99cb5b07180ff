package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func cmdRun(e *env, args []string) int {
	fs := newFlags(e, "run", "[-config FILE]")
	cfgPath := fs.String("config", "", "config file (default: the embedded default, simulated board)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
		return exitFail
	}
	log := newLogger(e.stderr, cfg.LogFormat, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("kioskd stopped", "err", err)
		return exitFail
	}
	return exitOK
}

// serve runs the service until ctx ends. Everything that can be checked is
// checked before anything is started.
func serve(ctx context.Context, cfg *Config, log *slog.Logger) error {
	secret, err := cfg.posSecret()
	if err != nil {
		return err
	}
	if isDevSecret(secret) {
		log.Warn("POS SECRET IS THE PUBLIC DEVELOPMENT KEY: anyone can forge payment results; set pos.secret_file before taking real money")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	log.Info("kioskd started", "version", version, "config", cfg.Source, "kiosk_id", cfg.KioskID,
		"board", cfg.Board.Kind, "data_dir", cfg.DataDir)
	<-ctx.Done()
	log.Info("kioskd stopping", "reason", context.Cause(ctx))
	return nil
}
