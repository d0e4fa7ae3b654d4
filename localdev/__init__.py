"""The local runner: the whole product on one machine, AWS simulated by an embedded moto server.

Dev-only; never deployed. It reads ``template.yaml`` rather than restating it.
"""
