"""The registry: the districts, the census import that fills the tables of equipment, and the web users."""
