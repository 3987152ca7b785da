"""sitepulse: power usage as live proof that a major construction project is being built.

The code lives in the design card's folders, installed under this namespace:
``streams/`` -> ``sitepulse.streams`` (what crosses the wire), ``agents/`` ->
``sitepulse.agents`` (the Faust app and its pure core), ``dashboards/`` ->
``sitepulse.dashboards``. This package holds what ties them together: settings,
the embedded runtime and the command line.
"""
