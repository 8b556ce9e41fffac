package android.net;

public abstract class Uri {
    public abstract String getHost();
    public abstract String getPath();
}
