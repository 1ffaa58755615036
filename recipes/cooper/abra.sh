# cooper serve's recipe: no config files to version yet.
