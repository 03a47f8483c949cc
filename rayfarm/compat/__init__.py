"""Drop-in replacements for the official Renderbus client packages, aimed at a rayfarm server.

They run in the customer's own Python environment (the one the official SDK is installed in), so they
import only the standard library at module level: nothing here may pull in rayfarm's server or SDK.
"""
