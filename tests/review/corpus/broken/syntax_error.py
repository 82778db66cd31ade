def load(conn):
    conn.execute("INSERT INTO t VALUES (1)"
    return 1
