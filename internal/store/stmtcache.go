package store

import (
	"container/list"
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"strings"
)

// SQLite's connections keep the statements they run prepared, by their text. The driver
// (modernc.org/sqlite) prepares every query anew and finalizes it after (it has no cache of its
// own), and parsing and planning were a quarter of a send's CPU on SQLite
// (docs/PERFORMANCE.md, "Embedded mode"). database/sql keeps prepared statements only for
// those prepared through it (*sql.Stmt), on every connection of the pool, and a transaction
// must name them (Tx.Stmt); here every query of the store gains without a change at its call.

// stmtCacheSize bounds the statements one connection keeps: the store's constant statements,
// and the shapes of its built ones (a send batch's insert has one shape per batch size).
const stmtCacheSize = 128

// stmtCacheMaxLen is the longest statement kept: a long built statement (a batch of hundreds of
// sends) is rarely run twice with the same shape.
const stmtCacheMaxLen = 4096

// cachingConnector opens the driver's connections wrapped in a cachingConn.
type cachingConnector struct {
	drv driver.Driver
	dsn string
}

func (c cachingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{Conn: conn, stmts: map[string]*list.Element{}, lru: list.New()}, nil
}

func (c cachingConnector) Driver() driver.Driver { return c.drv }

// openSQLite opens the pool of SQLite connections at dsn, each keeping its statements.
func openSQLite(dsn string) (*sql.DB, error) {
	probe, err := sql.Open("sqlite", dsn) // the driver modernc.org/sqlite registered
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	return sql.OpenDB(cachingConnector{drv: drv, dsn: dsn}), nil
}

// cachingConn is a driver connection whose QueryContext and ExecContext run kept statements.
// database/sql uses a connection from one goroutine at a time, so it needs no lock.
type cachingConn struct {
	driver.Conn
	stmts map[string]*list.Element // of *cachedStmt, most recently used at the front of lru
	lru   *list.List
}

type cachedStmt struct {
	query string
	stmt  driver.Stmt
	busy  bool // rows of it are open: another query of the same text prepares its own
}

// Unwrap is the driver's own connection (tests register hooks on it).
func (c *cachingConn) Unwrap() driver.Conn { return c.Conn }

// take returns the kept statement of query, prepared now if need be, marked busy; nil when
// query is not kept (too long, several statements, or its statement is busy).
func (c *cachingConn) take(ctx context.Context, query string) (*cachedStmt, error) {
	if len(query) > stmtCacheMaxLen || strings.Contains(query, ";") {
		return nil, nil
	}
	if e, ok := c.stmts[query]; ok {
		cs := e.Value.(*cachedStmt)
		if cs.busy {
			return nil, nil
		}
		c.lru.MoveToFront(e)
		cs.busy = true
		return cs, nil
	}
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs := &cachedStmt{query: query, stmt: st, busy: true}
	c.stmts[query] = c.lru.PushFront(cs)
	for e := c.lru.Back(); c.lru.Len() > stmtCacheSize && e != nil; {
		prev := e.Prev()
		if old := e.Value.(*cachedStmt); !old.busy {
			c.lru.Remove(e)
			delete(c.stmts, old.query)
			old.stmt.Close()
		}
		e = prev
	}
	return cs, nil
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		cs.busy = false
		return nil, err
	}
	return &cachedRows{Rows: rows, cs: cs}, nil
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	defer func() { cs.busy = false }()
	return cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

// Close finalizes the kept statements, then closes the connection.
func (c *cachingConn) Close() error {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedStmt).stmt.Close()
	}
	c.stmts, c.lru = nil, list.New()
	return c.Conn.Close()
}

// What database/sql looks for on a connection, passed to the driver's.

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *cachingConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

func (c *cachingConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *cachingConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

// cachedRows gives its statement back when closed (the driver resets it for the next run).
type cachedRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.cs.busy = false
	return err
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}
