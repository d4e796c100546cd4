package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/wschat/chat/internal/chat"
)

// SharedUsers implements chat.Store: one query for a whole presence.subscribe.
func (s *Store) SharedUsers(ctx context.Context, viewerID int64, ids []int64) ([]chat.SeenUser, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// The viewer is $1 (sharesChat); the ids follow from $2.
	var in strings.Builder
	args := make([]any, 0, len(ids)+1)
	args = append(args, viewerID)
	for i, id := range ids {
		if i > 0 {
			in.WriteString(", ")
		}
		in.WriteString("$" + strconv.Itoa(i+2))
		args = append(args, id)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.last_seen_at FROM users u
		WHERE u.id IN (`+in.String()+`) AND u.deleted_at IS NULL AND `+sharesChat+` ORDER BY u.id`, args...)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []chat.SeenUser
	for rows.Next() {
		var u chat.SeenUser
		var seen sql.NullInt64
		if err := rows.Scan(&u.ID, &seen); err != nil {
			return nil, wrap(err)
		}
		if seen.Valid {
			u.LastSeenAt = fromMS(seen.Int64)
		}
		out = append(out, u)
	}
	return out, wrap(rows.Err())
}
