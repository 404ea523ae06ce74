"""vigil's own detection evaluation (``vigil eval``): labelled traffic through the public engine API.

- :mod:`~vigil.evaluation.fleet`: a benign fleet generator (weeks, dozens of identities, drift);
- :mod:`~vigil.evaluation.attacks`: one attack type per named signal, injected and labelled;
- :mod:`~vigil.evaluation.scoring`: what detected, in time and false positive mean;
- :mod:`~vigil.evaluation.harness`: workspace, replay through ``Engine.decide``, scorecard;
- :mod:`~vigil.evaluation.datasets`: the public CloudTrail data sets (Stratus Red Team, OTRF);
- :mod:`~vigil.evaluation.report`: Markdown and JSON.
"""
