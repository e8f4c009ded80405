package stats

import "context"

// Reload exposes reload, which runs when the feed dropped the board.
func (b *Board) Reload(ctx context.Context) error { return b.reload(ctx) }

// Sweep exposes sweep, which runs every minute.
func (b *Board) Sweep() { b.sweep() }
