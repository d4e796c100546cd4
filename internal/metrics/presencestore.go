package metrics

import (
	"context"
	"time"

	"github.com/wschat/chat/internal/chat"
)

func (st store) SharedUsers(ctx context.Context, viewerID int64, ids []int64) ([]chat.SeenUser, error) {
	start := time.Now()
	r0, err := st.s.SharedUsers(ctx, viewerID, ids)
	st.observe("SharedUsers", start, err)
	return r0, err
}
