-- idemtest: dialect=teradatax
INSERT INTO t SELECT * FROM s;
