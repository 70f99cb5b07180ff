package machine

import (
	"context"
	"fmt"
	"time"

	"github.com/kioskd/kioskd/control"
)

// The journal keeps every record the broker has not acknowledged, so a
// broker out of reach for long enough fills the data partition. Nothing
// is dropped to make room and selling goes on; what is watched here is
// that the operator hears of it while there is still room.
const (
	// diskEvery: the partition fills over hours or days of an unreachable
	// broker, and a statfs costs next to nothing.
	diskEvery = time.Minute
	// diskLogEvery: a kiosk that stays low for days must not fill its
	// log, and the partition, with the same warning every minute.
	diskLogEvery = time.Hour
)

// watchDisk raises the "disk" fault while the data partition has less
// than minFree bytes available: once at start and every diskEvery until
// ctx ends. It runs beside the payment path, never on it: a slow statfs
// delays nothing but the next look.
func (m *Machine) watchDisk(ctx context.Context) {
	if m.minFree == 0 {
		return
	}
	t := time.NewTicker(diskEvery)
	defer t.Stop()
	var w diskWatch
	for {
		m.checkDisk(&w, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// diskWatch is what watchDisk carries from one look to the next.
type diskWatch struct {
	low       bool      // the "disk" fault is raised
	lowLogged time.Time // the last warning that it is low
	errLogged time.Time // the last warning that statfs failed
}

func (m *Machine) checkDisk(w *diskWatch, now time.Time) {
	u, err := m.usage(m.dataDir)
	if err != nil {
		// Not knowing is not being full: the fault stays as it was.
		if w.errLogged.IsZero() || now.Sub(w.errLogged) >= diskLogEvery {
			w.errLogged = now
			m.log.Warn("data partition free space unknown", "data_dir", m.dataDir, "err", err)
		}
		return
	}
	// Once low, it clears only an eighth above the warning level: space
	// hovering at the level would otherwise warn and clear every minute.
	m.mu.Lock()
	m.disk = &control.Disk{Dir: m.dataDir, FreeBytes: u.Avail, TotalBytes: u.Total, WarnBelowBytes: m.minFree, CheckedAt: now}
	m.mu.Unlock()
	if u.Avail >= m.minFree && (!w.low || u.Avail >= m.minFree+m.minFree/8) {
		if w.low {
			w.low = false
			m.fault("disk", nil)
			m.log.Info("data partition has room again", "free", control.SizeText(u.Avail), "total", control.SizeText(u.Total),
				"warn_below", control.SizeText(m.minFree))
		}
		return
	}
	// Raised on every look, so that the status says how much is left now.
	m.fault("disk", fmt.Errorf("data partition nearly full: %s free of %s (warning below %s); "+
		"selling goes on, unshipped journal records are kept", control.SizeText(u.Avail), control.SizeText(u.Total), control.SizeText(m.minFree)))
	if !w.low || now.Sub(w.lowLogged) >= diskLogEvery {
		w.lowLogged = now
		m.log.Warn("data partition nearly full; selling goes on, unshipped journal records are kept",
			"free", control.SizeText(u.Avail), "total", control.SizeText(u.Total), "warn_below", control.SizeText(m.minFree), "data_dir", m.dataDir)
	}
	w.low = true
}
