"""Adapters that let other schedulers plan with greenai. Each subpackage imports its engine
(``airflow``: the ``greenai[airflow]`` extra) and nothing else of greenai imports them."""
