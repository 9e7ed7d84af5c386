"""Plant simulator, Modbus server and backtests. Depends on ``dispatch``, never the reverse."""
