"""Pure forecasting: PV power from weather with pvlib (``pv``), site load from history and the
factory calendar (``load``). May import ``dispatch.types``, ``dispatch.config`` and
``dispatch.calendar`` only; pvlib lives here and nowhere else in ``dispatch`` (file readers in
``dispatch.sources`` excepted)."""
