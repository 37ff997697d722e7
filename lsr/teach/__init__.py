"""Teaching views of a network: diagrams (`draw`), an HTML lab report
(`report`), a step-by-step packet walk (`step`) and exercises (`exercise`).

Everything here reads the same tables as the rest of `lsr`: the topology,
the IGP RIB, the converged LFIBs and LDP bindings of the simulator
(`lsr.sim`) or of a running lab (`lsr.lab`), and the validation engine
(`lsr.oam.validate`).
"""
