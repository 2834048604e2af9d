"""The closed-loop DVFS governor: policies, operating points, the online model, decisions."""
