"""Board support: the Avnet Ultra96-V2 platform and its build and host driver."""
