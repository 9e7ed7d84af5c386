"""Device adapters: register maps as data, the register codec, Modbus clients and writers.

Role: everything between the controller's ``Setpoints`` / ``Snapshot`` and the inverters'
registers. The only home of pymodbus in ``dispatch`` (``transport``). Modules:
``registers`` (map model and TOML loader), ``codec`` (pure encode/decode), ``commands`` (pure
setpoint <-> control registers), ``transport`` (pymodbus, SunSpec discovery), ``client``
(per-device read and safe write), ``snapshot`` (merge into one ``Snapshot``).
"""
