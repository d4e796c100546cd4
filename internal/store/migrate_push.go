package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"

	"github.com/wschat/chat/internal/chat"
)

// pushEndpointMigration is migration 00017, in Go because its rule is
// chat.CanonicalPushEndpoint: it respells every stored push endpoint so, as subscribing does
// from now on, so that one browser's endpoint posted in two spellings ("HTTPS://Push.Example:443/x"
// and "https://push.example/x") is one subscription, not two pushed alike. Of the rows that
// become one endpoint, the one already spelled so stays (a browser posts its endpoint as its push
// service wrote it; other spellings came from hand-made requests), else the newest; the others
// are deleted. Down changes nothing: the old code reads the canonical spelling as any other.
func pushEndpointMigration() *goose.Migration {
	return goose.NewGoMigration(17, &goose.GoFunc{RunTx: canonicalPushEndpoints}, &goose.GoFunc{RunTx: func(context.Context, *sql.Tx) error { return nil }})
}

func canonicalPushEndpoints(ctx context.Context, tx *sql.Tx) error {
	type row struct {
		id       int64
		endpoint string
	}
	// Newest first, so that the first row of an endpoint met is the one kept when none is
	// spelled canonically.
	rows, err := tx.QueryContext(ctx, `SELECT id, endpoint FROM push_subscriptions ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return fmt.Errorf("list push endpoints: %w", err)
	}
	byCanon := map[string][]row{}
	var order []string
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.endpoint); err != nil {
			rows.Close()
			return err
		}
		c := chat.CanonicalPushEndpoint(r.endpoint)
		if _, ok := byCanon[c]; !ok {
			order = append(order, c)
		}
		byCanon[c] = append(byCanon[c], r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, canon := range order {
		group := byCanon[canon]
		keep := group[0]
		for _, r := range group {
			if r.endpoint == canon {
				keep = r
				break
			}
		}
		for _, r := range group {
			if r.id == keep.id {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE id = $1`, r.id); err != nil {
				return fmt.Errorf("drop push endpoint %d: %w", r.id, err)
			}
		}
		if keep.endpoint != canon {
			if _, err := tx.ExecContext(ctx, `UPDATE push_subscriptions SET endpoint = $1 WHERE id = $2`, canon, keep.id); err != nil {
				return fmt.Errorf("respell push endpoint %d: %w", keep.id, err)
			}
		}
	}
	return nil
}
