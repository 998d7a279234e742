package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// openBolt is Main.OpenStore for the bbolt file in --data-dir.
func openBolt(cfg config.Config, log *slog.Logger) (store.Store, error) {
	st, err := openStore(cfg.DataDir, cfg.AcceptMetaRollback, log)
	if err != nil {
		return nil, err // not a nil *bolt.Store in a non-nil interface
	}
	return st, nil
}

// openStore opens the store and reports at ERROR what Open found damaged
// but could still open: a meta-page fallback the operator accepted, and
// records whose checksum fails (their accounts are left out of service).
func openStore(dir string, acceptMetaRollback bool, log *slog.Logger) (*bolt.Store, error) {
	st, err := bolt.OpenWith(dir, bolt.Options{AcceptMetaRollback: acceptMetaRollback})
	var rb *bolt.MetaRollbackError
	if errors.As(err, &rb) {
		fb := rb.Fallback
		log.Error("store refused: a meta page is damaged and opening would roll back to the other one; --accept-meta-rollback accepts it",
			"damaged_meta_page", fb.DamagedPage, "damaged_txid", fb.DamagedTxid, "used_meta_page", fb.UsedPage, "used_txid", fb.UsedTxid)
		return nil, fmt.Errorf("open store: %w; start with --accept-meta-rollback to open it from the other meta page", err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if fb := st.MetaFallback(); fb != nil {
		log.Error("store opened from its older meta page (--accept-meta-rollback): the last commit may be lost",
			"damaged_meta_page", fb.DamagedPage, "damaged_txid", fb.DamagedTxid, "used_meta_page", fb.UsedPage, "used_txid", fb.UsedTxid)
	}
	damaged, n := st.DamagedRecords()
	for _, d := range damaged {
		log.Error("stored record damaged", "key", d.Key, "err", d)
	}
	if n > len(damaged) {
		log.Error("more stored records damaged", "listed", len(damaged), "total", n)
	}
	return st, nil
}
