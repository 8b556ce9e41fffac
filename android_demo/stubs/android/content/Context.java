package android.content;

import android.content.res.AssetManager;

/** Stands in for Context and ContextWrapper (which implements these) together. */
public abstract class Context {
    public AssetManager getAssets() { throw new RuntimeException("Stub!"); }
    public int checkSelfPermission(String permission) { throw new RuntimeException("Stub!"); }
}
